-- GET /api/v3/predictions/{id}/result round-robin over pre-submitted ids. args: IDS_FILE KEY
local ids = {}
local next_index = 0
local headers = {}

function init(args)
  for line in io.lines(args[1]) do
    if line ~= "" then
      ids[#ids + 1] = line
    end
  end
  headers["Authorization"] = "Bearer " .. args[2]
  -- threads start apart so they do not poll the same id in lockstep
  next_index = math.floor((#ids / 2) * ((thread_index or 1) - 1))
end

function request()
  next_index = next_index % #ids + 1
  return wrk.format("GET", "/api/v3/predictions/" .. ids[next_index] .. "/result", headers)
end
