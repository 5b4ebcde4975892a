#!/usr/bin/env python3
"""A TCP relay for the end-to-end tests: listens on 127.0.0.1:PORT, forwards every connection to
127.0.0.1:TARGET, and appends every byte it carries, both ways, to CAPTURE. Killing it drops
every connection it carries (a network drop); starting it again on the same port lets peers
reconnect.

usage: tcprelay.py PORT TARGET CAPTURE
"""
import socket
import sys
import threading


def pump(src, dst, capture, lock):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            with lock:
                capture.write(data)
                capture.flush()
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    port, target, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    capture, lock = open(path, "ab"), threading.Lock()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(16)
    print("listening", flush=True)
    while True:
        client, _ = listener.accept()
        try:
            server = socket.create_connection(("127.0.0.1", target))
        except OSError:
            client.close()
            continue
        for a, b in ((client, server), (server, client)):
            threading.Thread(target=pump, args=(a, b, capture, lock), daemon=True).start()


if __name__ == "__main__":
    main()
