#!/bin/sh
# A goinetd handler in shell: the connection is stdin and stdout, and the
# peer's address is in the environment (UCSPI and systemd conventions).
# It greets the client, then answers each line it sends, until end of file.
printf 'Hello %s, port %s; this is %s.\n' "$TCPREMOTEIP" "$TCPREMOTEPORT" "$GREETER"
while IFS= read -r line; do
	printf 'you said: %s\n' "$line"
done
# Whatever goes to stderr lands in goinetd's log, tagged with service and pid.
echo "hello.sh: $TCPREMOTEIP said goodbye" >&2
