/* lwip_stub/netinet/tcp.h - declarations only (see README) */
#ifndef HIL_LWIP_STUB_NETINET_TCP_H
#define HIL_LWIP_STUB_NETINET_TCP_H
#define TCP_NODELAY 0x01
#endif
