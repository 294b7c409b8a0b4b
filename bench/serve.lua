-- wrk script for bench/serve.sh: one authenticated MCP tools/call per request, inside a session
-- that serve.sh opened with curl. Token and session come from the environment.
local token = os.getenv("MCPGEN_BENCH_TOKEN")
local session = os.getenv("MCPGEN_BENCH_SESSION")
if token == nil or session == nil then
  error("set MCPGEN_BENCH_TOKEN and MCPGEN_BENCH_SESSION (bench/serve.sh does)")
end

wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"getOrder","arguments":{"orderId":"ord-1001"}}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["X-OEMCP-SERVICEACCOUNT"] = token
wrk.headers["Mcp-Session-Id"] = session
wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
