import trio

import emunet


async def main():
    net = emunet.Network(seed=1)
    net.add_host("client", interfaces={"eth0": "10.0.1.2/24"}, routes={"default": "10.0.1.1"})
    net.add_router("r1", interfaces={"eth0": "10.0.1.1/24", "eth1": "10.0.2.1/24"})
    net.add_host("server", interfaces={"eth0": "10.0.2.2/24"}, routes={"default": "10.0.2.1"})
    net.add_link("client:eth0", "r1:eth0", delay="10ms", bandwidth="100Mbit")
    net.add_link("r1:eth1", "server:eth0", delay="10ms", bandwidth="100Mbit")
    async with net.running():
        c = net.host("client")
        r = await c.ping("10.0.2.2", count=3)
        print(r, r.rtts, trio.current_time())
        print(await c.traceroute("10.0.2.2"))
        s = net.host("server").udp_socket(5001)
        u = c.udp_socket()
        await u.sendto(b"x" * 4000, ("10.0.2.2", 5001))
        d, a = await s.recvfrom()
        print(len(d), a)
        for h in ("client", "r1", "server"):
            print(h, {k: v for k, v in net.host(h).nstat().items() if v})


emunet.run(main)
