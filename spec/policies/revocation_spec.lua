-- policies/authorizers/revocation.lua through the kit: the verdicts a TLS handshake gets.
local testing = require "moongate.testing"

local POLICY = "policies/authorizers/revocation.lua"

local function cert(t)
  local c = {
    subjectDN = "O=Example,CN=client", issuerDN = "O=Example,CN=Issuing CA",
    serialNumber = "a1:b2:c3", fingerprint = string.rep("ab", 32),
    validity = { notBefore = "May 28 12:30:02 2019 GMT", notAfter = "May 28 12:30:02 2029 GMT" },
  }
  for k, v in pairs(t or {}) do
    c[k] = v
  end
  return c
end

describe("authorizers/revocation", function()
  it("denies a listed serial, whatever its case and separators", function()
    local conf = { serials = { "A1B2C3" } }
    assert.same({ outcome = "deny", reason = "serial a1:b2:c3 is revoked" }, testing.check_cert(POLICY, conf, cert()))
  end)

  it("denies a listed fingerprint and a refused issuer", function()
    local d = testing.check_cert(POLICY, { fingerprints = { string.rep("AB", 32) } }, cert())
    assert.equal("deny", d.outcome)
    d = testing.check_cert(POLICY, { issuers = { "O=Example,CN=Issuing CA" } }, cert())
    assert.same({ outcome = "deny", reason = "issuer O=Example,CN=Issuing CA is refused" }, d)
  end)

  it("allows anything else", function()
    assert.same({ outcome = "allow" }, testing.check_cert(POLICY, { serials = { "01:02" } }, cert()))
    assert.same({ outcome = "allow" }, testing.check_cert(POLICY, {}, cert()))
  end)

  it("rejects a configuration its schema does not allow", function()
    assert.has_error(function()
      testing.check_cert(POLICY, { serial = { "a1" } }, cert())
    end)
  end)

  it("normalizes serials with a pure helper", function()
    local mod = testing.load(POLICY)
    assert.equal("a1b2c3", mod.normalize_serial("A1:B2:C3"))
  end)
end)
