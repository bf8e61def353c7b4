local t = {}
for i = 1, 10 do t["GET /r" .. i] = { integration = { type = "mock" } } end
return { apis = { x = { stages = { ["$default"] = {} }, routes = t } } }
