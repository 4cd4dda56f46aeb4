/* A UDP echo server for the tests: busybox has no UDP server. Usage: udpecho PORT */
#include <arpa/inet.h>
#include <stdlib.h>
#include <sys/socket.h>
int main(int argc, char **argv) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    bind(fd, (struct sockaddr *)&addr, sizeof addr);
    char buf[65536];
    for (;;) {
        struct sockaddr_in peer; socklen_t len = sizeof peer;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&peer, &len);
        if (n >= 0) sendto(fd, buf, n, 0, (struct sockaddr *)&peer, len);
    }
}
