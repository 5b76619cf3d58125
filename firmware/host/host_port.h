/* host_port.h - the Linux port of the hil-agent core. */
#ifndef HOST_PORT_H
#define HOST_PORT_H

#include "agent_port.h"

typedef struct {
    const char *state_path;
    char **argv; /* for re-exec on reboot */
    uint64_t boot_ns;
    int in_fd;
    int out_fd;
    /* The virtual board's power switch, for the rig's own fault tests: when this file exists
     * as a console read brings a `config` command, the agent removes it (so one agent, once)
     * and dies by SIGKILL, like a board losing power mid-provisioning. From the environment
     * variable HIL_AGENT_POWER_CUT_FILE; NULL (the default) = never. */
    const char *power_cut_file;
} host_port_t;

/* Fill *port with the host implementation; hp must outlive the agent. */
void host_port_make(host_port_t *hp, agent_port_t *port);

#endif
