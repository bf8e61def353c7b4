-- Revocation check for mutual TLS: denies client certificates by serial number or by
-- SHA-256 fingerprint (for lists kept outside a CRL, e.g. a deny list a security team
-- maintains), and optionally certificates issued by given CAs.
--
--   domains = { ["api.example.test"] = { ..., mtls = { truststore = "certs/ca.pem",
--     revocation = { policy = "policies/authorizers/revocation.lua", ttl = 300,
--       config = { serials = { "a1:b2:c3" }, fingerprints = {} } } } } }
--
-- check(cert, conf) runs once per handshake (its verdict is cached per certificate for
-- `ttl` seconds); `cert` has the fields of requestContext.authentication.clientCert
-- (clientCertPem, subjectDN, issuerDN, serialNumber, validity) plus `fingerprint`.
local M = {}

M.schema = {
  type = "record",
  fields = {
    serials = {
      type = "list", default = {}, description = 'revoked serial numbers, "a1:b2:c3" (case-insensitive)',
      elements = { type = "string", non_empty = true, description = "a serial number" },
    },
    fingerprints = {
      type = "list", default = {}, description = "revoked SHA-256 fingerprints, 64 hex digits",
      elements = { type = "string", non_empty = true, description = "a fingerprint" },
    },
    issuers = {
      type = "list", default = {}, description = "issuer DNs whose certificates are all refused",
      elements = { type = "string", non_empty = true, description = "an issuer DN (RFC 2253)" },
    },
  },
}

local lower, gsub = string.lower, string.gsub

-- Normalizes a serial: lower case, no separators.
function M.normalize_serial(s)
  return (gsub(lower(s), "[^0-9a-f]", ""))
end

-- Turns the lists into sets once, when the configuration loads.
function M.prepare(conf)
  local set = { serials = {}, fingerprints = {}, issuers = {} }
  for _, s in ipairs(conf.serials) do
    set.serials[M.normalize_serial(s)] = true
  end
  for _, f in ipairs(conf.fingerprints) do
    set.fingerprints[lower(f)] = true
  end
  for _, i in ipairs(conf.issuers) do
    set.issuers[i] = true
  end
  return set
end

-- true, or false and the reason.
function M.verdict(set, cert)
  if set.serials[M.normalize_serial(cert.serialNumber or "")] then
    return false, "serial " .. tostring(cert.serialNumber) .. " is revoked"
  end
  if set.fingerprints[lower(cert.fingerprint or "")] then
    return false, "fingerprint is revoked"
  end
  if set.issuers[cert.issuerDN or ""] then
    return false, "issuer " .. tostring(cert.issuerDN) .. " is refused"
  end
  return true
end

function M.check(cert, conf)
  return M.verdict(conf, cert)
end

return M
