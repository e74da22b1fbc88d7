-- A client's whole job: submit, then poll that id until it is terminal, then submit again.
-- args: SUBMIT_PATH BODY_FILE KEY
-- response() cannot tell which connection a body came from, so pending ids go through a per-thread queue:
-- the body itself names the prediction and its status.
local queue = {}
local submit_request
local poll_headers = {}
local terminal = { completed = true, failed = true, cancelled = true, timeout = true }

function init(args)
  cycles = 0
  local f = assert(io.open(args[2], "rb"))
  local body = f:read("*a")
  f:close()
  poll_headers["Authorization"] = "Bearer " .. args[3]
  submit_request = wrk.format("POST", args[1],
    { ["Authorization"] = "Bearer " .. args[3], ["Content-Type"] = "application/json" }, body)
end

function request()
  local id = table.remove(queue, 1)
  if id then
    return wrk.format("GET", "/api/v3/predictions/" .. id .. "/result", poll_headers)
  end
  return submit_request
end

function response(status, headers, body)
  if status ~= 200 then
    return
  end
  local id = body:match('"id":"(%x+)"')
  local state = body:match('"status":"(%a+)"')
  if not id then
    return
  end
  if terminal[state] then
    cycles = cycles + 1
  else
    queue[#queue + 1] = id
  end
end
