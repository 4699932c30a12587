-- POST /v1/entitlements/check with a body of 1,000 user ids and a service credential.
function init(args)
  local f = io.open(args[1]); wrk.body = f:read("*a"); f:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. args[2]
end
