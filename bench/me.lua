-- GET /v1/me/entitlements as many different users, each with their own identity token.
local tokens = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
  i = math.random(#tokens)
end
function request()
  i = i % #tokens + 1
  return wrk.format("GET", "/v1/me/entitlements", { ["Authorization"] = "Bearer " .. tokens[i] })
end
