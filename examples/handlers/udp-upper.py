#!/usr/bin/env python3
"""A wait-mode UDP handler, as every classic inetd runs them.

goinetd starts it when a datagram is pending, with the bound UDP socket
itself on fd 0, the datagram still unread. It receives the datagram,
answers the sender, and exits; goinetd starts the next one for the next
datagram. (A long-lived handler could instead loop, and exit when idle.)
"""
import socket

sock = socket.socket(fileno=0)
data, peer = sock.recvfrom(65535)
sock.sendto(data.upper(), peer)
