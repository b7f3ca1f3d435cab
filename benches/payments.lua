-- wrk script for benches/payments.rs: every thread rotates over the requests
-- listed in a file, one per line: "PATH" (no receipt) or "PATH RECEIPT"
-- (sent as "Authorization: Tollgate RECEIPT"). All requests are built once in
-- init(), so request() costs the same for one line or five hundred.
--
--   wrk -t2 -c64 -d5s --latency -s benches/payments.lua http://HOST:PORT -- LINES_FILE

local counter = 1

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

local reqs = {}
local n = 0
local i = 0

function init(args)
  local path = args[1]
  if path == nil then
    error("payments.lua: pass the request file after --")
  end
  local file = assert(io.open(path, "r"))
  for line in file:lines() do
    local p, receipt = line:match("^(%S+)%s*(%S*)%s*$")
    if p ~= nil then
      local headers = { ["Accept"] = "application/json" }
      if receipt ~= "" then
        headers["Authorization"] = "Tollgate " .. receipt
      end
      n = n + 1
      reqs[n] = wrk.format("GET", p, headers)
    end
  end
  file:close()
  if n == 0 then
    error("payments.lua: no requests in " .. path)
  end
  -- Threads start at different offsets so they do not walk the list in step.
  i = (((tid or 1) - 1) * 7919) % n
end

function request()
  i = i + 1
  if i > n then
    i = 1
  end
  return reqs[i]
end
