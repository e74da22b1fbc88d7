-- static.lua plus a stop: each thread stops after its share of accepted submits and leaves a marker file, since
-- wrk's main thread sleeps out the whole -d regardless; bench/run.py then interrupts wrk (SIGINT), which prints
-- the summary. args: as static.lua, then PER_THREAD and MARKER_PREFIX as the sixth and seventh.
local limit
local marker
local accepted = 0

local static_init = init
function init(args)
  static_init(args)
  limit = tonumber(args[6])
  marker = args[7] .. (thread_index or 1)
  cycles = 0
end

function response(status, headers, body)
  if status == 200 then
    accepted = accepted + 1
    cycles = accepted -- reported as "cycles": accepted submits
    if accepted == limit then
      local f = io.open(marker, "w")
      if f then
        f:close()
      end
      wrk.thread:stop()
    end
  end
end
