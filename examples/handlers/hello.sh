#!/bin/sh
# A goinetd handler in shell: the connection is stdin and stdout, and the
# peer's address is in the environment (UCSPI and systemd conventions).
# It greets the client, then answers each line it sends, until end of file.
# Over a unix socket, the peer is a process: UNIXREMOTEPID and friends.
if [ "$PROTO" = UNIX ]; then
	printf 'Hello process %s (uid %s); this is %s.\n' "$UNIXREMOTEPID" "$UNIXREMOTEEUID" "$GREETER"
else
	printf 'Hello %s, port %s; this is %s.\n' "$TCPREMOTEIP" "$TCPREMOTEPORT" "$GREETER"
fi
while IFS= read -r line; do
	printf 'you said: %s\n' "$line"
done
# Whatever goes to stderr lands in goinetd's log, tagged with service and pid.
echo "hello.sh: ${TCPREMOTEIP:-process $UNIXREMOTEPID} said goodbye" >&2
