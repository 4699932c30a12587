-- GET /v1/me/entitlements as many different users, each with their own identity token.
-- Requests are formatted once in init: no garbage per request, so wrk's own garbage collector
-- does not add pauses to the latencies it measures.
local requests = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do
    requests[#requests + 1] = wrk.format("GET", "/v1/me/entitlements", { ["Authorization"] = "Bearer " .. line })
  end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
  i = math.random(#requests)
end
function request()
  i = i % #requests + 1
  return requests[i]
end
