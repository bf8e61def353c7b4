-- moongate.config.countries: the country codes a geo_match statement accepts (README
-- "geo_match"): ISO 3166-1 alpha-2's 249 officially assigned codes (Debian's iso-codes
-- 4.15, /usr/share/iso-codes/json/iso_3166-1.json) and XK (Kosovo), which AWS WAF's
-- CountryCode list also has. M.check(v) is the schema check of one code.
local find, format, gmatch = string.find, string.format, string.gmatch

local M = {}

local CODES = [[
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
VN VU WF WS YE YT ZA ZM ZW XK]]

M.set = {}
for c in gmatch(CODES, "%u%u") do
  M.set[c] = true
end

-- Codes people write that ISO does not have, with what to write instead.
local HINTS = {
  UK = ' (the United Kingdom is "GB")',
  EU = ' (a region, not a country: the database tags some blocks "EU"; match them with '
    .. 'label_match on "awswaf:clientip:geo:country:EU")',
  AP = ' (a region, not a country: the database tags some blocks "AP"; match them with '
    .. 'label_match on "awswaf:clientip:geo:country:AP")',
}

function M.check(v)
  if not find(v, "^%u%u$") then
    return format('"%s" is not a country code: two upper-case letters, ISO 3166-1 alpha-2 ("US", "DE")', v)
  end
  if not M.set[v] then
    return format('"%s" is not an ISO 3166-1 alpha-2 country code%s', v, HINTS[v] or "")
  end
end

return M
