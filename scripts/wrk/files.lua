-- wrk: GET /files/{name}, cycling through the names in $DES_BENCH_NAMES (one per line).
local names = {}
for line in io.lines(os.getenv("DES_BENCH_NAMES")) do
  names[#names + 1] = line:gsub("%(", "%%28"):gsub("%)", "%%29")
end
local i = 0

request = function()
  i = i + 1
  return wrk.format("GET", "/files/" .. names[(i % #names) + 1])
end

done = function(summary, latency, requests)
  io.write(string.format("non-2xx: %d\n", summary.errors.status))
end
