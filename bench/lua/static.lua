-- One fixed request. args: METHOD PATH KEY|- [CONTENT_TYPE BODY_FILE]
-- Set in init() but still static: wrk formats the request once per thread.
function init(args)
  wrk.method = args[1]
  wrk.path = args[2]
  if args[3] ~= "-" then
    wrk.headers["Authorization"] = "Bearer " .. args[3]
  end
  if args[4] then
    wrk.headers["Content-Type"] = args[4]
    local f = assert(io.open(args[5], "rb"))
    wrk.body = f:read("*a")
    f:close()
  end
end
