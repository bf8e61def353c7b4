return { apis = { x = { stages = { ["$default"] = {} }, routes = { ["GET /a/{b+}/c"] = {}, ["GET /a"] = { integration = { type = "mock", status = 99 } } } } } }
