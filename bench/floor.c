/*
 * floor: the smallest useful inetd, as the floor of the spawn benchmark.
 *
 *     floor PORT PROGRAM [ARG...]
 *
 * It listens on 127.0.0.1:PORT and, for each connection, posix_spawns
 * PROGRAM with the connection as its fds 0 and 1 (fd 2 is floor's own).
 * A SIGCHLD handler reaps every exited child. It does nothing else: no
 * config, no environment for the handler beyond its own, no logging, no
 * limits, no admission. Whatever goinetd spends beyond this per connection
 * is the price of its features and of Go.
 *
 * glibc's posix_spawn is clone(CLONE_VM | CLONE_VFORK) and execve: the
 * cheapest way to start a program from a parent of any size.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static void reap(int sig)
{
	int saved = errno;
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	errno = saved;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: floor PORT PROGRAM [ARG...]\n");
		return 2;
	}
	int port = atoi(argv[1]);
	if (port <= 0 || port > 65535) {
		fprintf(stderr, "floor: bad port %s\n", argv[1]);
		return 2;
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = reap;
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGCHLD, &sa, NULL) < 0) {
		perror("floor: sigaction");
		return 1;
	}

	int ln = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ln < 0) {
		perror("floor: socket");
		return 1;
	}
	int one = 1;
	setsockopt(ln, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in addr;
	memset(&addr, 0, sizeof addr);
	addr.sin_family = AF_INET;
	addr.sin_port = htons((unsigned short)port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(ln, (struct sockaddr *)&addr, sizeof addr) < 0) {
		perror("floor: bind");
		return 1;
	}
	if (listen(ln, 4096) < 0) {
		perror("floor: listen");
		return 1;
	}

	for (;;) {
		/* Close-on-exec: only the dup2'd copies on 0 and 1 reach the child. */
		int fd = accept4(ln, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				struct timespec pause = {0, 5 * 1000 * 1000};
				nanosleep(&pause, NULL);
			}
			continue;
		}
		posix_spawn_file_actions_t fa;
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, fd, 0);
		posix_spawn_file_actions_adddup2(&fa, fd, 1);
		pid_t pid;
		int err = posix_spawn(&pid, argv[2], &fa, NULL, argv + 2, environ);
		if (err != 0)
			fprintf(stderr, "floor: spawn %s: %s\n", argv[2], strerror(err));
		posix_spawn_file_actions_destroy(&fa);
		close(fd);
	}
}
