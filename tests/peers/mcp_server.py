"""An MCP server built with the official MCP Python SDK (FastMCP), over Streamable HTTP.

Usage: mcp_server.py json|sse. Listens on 127.0.0.1, port chosen by the system, and prints one
line, its MCP URL (http://127.0.0.1:PORT/mcp), once it accepts connections. `json` answers
every request with one JSON body; `sse` answers with an SSE stream, so a tool can send log
notifications and ask the client for its roots before its result. Tools: `echo` (the text
back), `chatty` (logs "working", asks for the roots in sse mode, returns their names),
`announce` (sends notifications/tools/list_changed on the GET stream).
Exits when stdin closes.
"""

import asyncio
import socket
import sys

import uvicorn
from mcp.server.fastmcp import Context, FastMCP


def build(mode: str) -> FastMCP:
    server = FastMCP("sdk-server", json_response=(mode == "json"))

    @server.tool()
    def echo(text: str) -> str:
        """Return the text."""
        return text

    @server.tool()
    async def chatty(ctx: Context) -> str:
        """Log, ask for the client's roots (sse mode), and name them."""
        await ctx.info("working")
        if mode == "json":
            return "no roots in json mode"
        roots = await ctx.session.list_roots()
        return ",".join(root.name or str(root.uri) for root in roots.roots)

    @server.tool()
    async def announce(ctx: Context) -> str:
        """Tell the client its tool list changed: a notification outside any request, which
        the SDK sends on the session's GET stream."""
        await ctx.session.send_tool_list_changed()
        return "announced"

    return server


async def main(mode: str) -> None:
    app = build(mode).streamable_http_app()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    print(f"http://127.0.0.1:{port}/mcp", flush=True)
    # Stop when whoever started us closes our stdin (or dies).
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    server.should_exit = True
    await serving


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
