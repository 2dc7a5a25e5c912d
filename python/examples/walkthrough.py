"""The walkthrough: a blocking call and a submitted task, both printing 11 (run a broker and
`python -m zerotask.node` first). usage: walkthrough.py [BROKER]"""
import sys

from zerotask.client import AsyncClient, Client

broker = sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:5555"
client = Client(broker)
print(client.add(5, 6))          # 11

aclient = AsyncClient(broker)
t = aclient.add(5, 6)
print(t.status(), file=sys.stderr)  # "QUEUED", "RUNNING", ...
print(t.wait(timeout=30))        # 11
