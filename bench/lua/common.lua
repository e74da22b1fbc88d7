-- Prepended to every scenario script by bench/run.py: numbers each thread and prints one JSON line at the end.
-- Scenario scripts must not define setup() or done().
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_index", #threads)
end

function done(summary, latency, requests)
  local cycles = 0
  for _, t in ipairs(threads) do
    cycles = cycles + (t:get("cycles") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"mean_us":%.1f,"cycles":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, cycles, e.connect, e.read, e.write, e.status, e.timeout))
end
