-- wrk: POST /assign with a JSON body (one name per request).
wrk.method = "POST"
wrk.body = '{"prefix": "BENCH"}'
wrk.headers["Content-Type"] = "application/json"

function response(status, headers, body)
  if status ~= 200 then errors = (errors or 0) + 1 end
end

done = function(summary, latency, requests)
  io.write(string.format("non-2xx: %d\n", summary.errors.status))
end
