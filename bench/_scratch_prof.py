import asyncio, cProfile, pstats, tempfile, time, sys, logging
from pathlib import Path
import asyncpg, httpx
from bench import workload
from bench.lab import clerk_session
from bench.page_cache import new_order
from store.database import embedded_postgres
from store.migrations import migrate
from web.access import SESSION_COOKIE
from web.app import create_app
from web.settings import Settings

async def call(app, path, cookie):
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"bench.local"), (b"cookie", cookie.encode())], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    async def receive(): return {"type": "http.request", "body": b"", "more_body": False}
    out = []
    async def send(m): out.append(m)
    await app(scope, receive, send)
    return out[0]["status"]

async def measure(url):
    logging.getLogger('httpx').setLevel(logging.WARNING)
    conn = await asyncpg.connect(url); await migrate(conn); await conn.close()
    app = create_app(Settings(database_url=url, csrf_secret="bench", subscriptions=False, pool_size=4))
    transport = httpx.ASGITransport(app=app)
    async with app.lifespan(), httpx.AsyncClient(transport=transport, base_url="http://bench.local") as http:
        session = await clerk_session(url)
        http.cookies.set(SESSION_COOKIE, session)
        await http.get("/orders")
        http.headers["x-csrftoken"] = http.cookies["csrftoken"]
        await workload.register_customers(app.state.services.orders, ["c-1"])
        order = await new_order(http, 20)
        cookie = f"{SESSION_COOKIE}={session}; csrftoken={http.cookies['csrftoken']}"
        for target in [order, "/orders"] * 2:
            assert await call(app, target, cookie) == 200
            for _ in range(200): await call(app, target, cookie)
            t = time.process_time()
            for _ in range(3000): await call(app, target, cookie)
            print(target, round((time.process_time()-t)/3000*1e6), "us CPU/request (app only)")
        if "prof" in sys.argv:
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(3000): await call(app, order, cookie)
            prof.disable()
            st=pstats.Stats(prof); st.sort_stats(sys.argv[-1]).print_stats(60); st.print_callers("copy.py:66|shield")

with tempfile.TemporaryDirectory() as folder, embedded_postgres(Path(folder)/"pg", delete=True) as url:
    asyncio.run(measure(url))
