/* lwip_stub/arpa/inet.h - declarations only (see README) */
#ifndef HIL_LWIP_STUB_ARPA_INET_H
#define HIL_LWIP_STUB_ARPA_INET_H
#include <netinet/in.h>
const char *inet_ntop(int af, const void *src, char *dst, socklen_t size);
int inet_pton(int af, const char *src, void *dst);
#endif
