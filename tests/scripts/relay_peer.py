"""A relay client written the way the original toycoin programs talk to
their relay (asyncio streams; 4-byte big-endian length, then the payload;
readexactly on both). Usage: relay_peer.py HOST PORT PAYLOAD_FILE

Subscribes to /topic/main, publishes the payload to it, and exits 0 once
the same payload comes back; exit 1 otherwise.
"""

import asyncio, sys


async def read_msg(reader):
    size = int.from_bytes(await reader.readexactly(4), byteorder='big')
    return await reader.readexactly(size)


async def send_msg(writer, data):
    writer.writelines([len(data).to_bytes(4, byteorder='big'), data])
    await writer.drain()


async def main(host, port, payload):
    reader, writer = await asyncio.open_connection(host, port)
    await send_msg(writer, b'/topic/main')
    await asyncio.sleep(0.3)  # let the relay register the subscription
    await send_msg(writer, b'/topic/main')
    await send_msg(writer, payload)
    got = await asyncio.wait_for(read_msg(reader), 10)
    writer.close()
    return 0 if got == payload else 1


host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sys.exit(asyncio.run(main(host, port, open(path, 'rb').read())))
