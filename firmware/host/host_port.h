/* host_port.h - the Linux port of the hil-agent core. */
#ifndef HOST_PORT_H
#define HOST_PORT_H

#include "agent_port.h"
#include "nvs_image.h"

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
    /* The virtual board's clock (agent_port_t.clock_get / clock_set): with clock_unset
     * it starts like a chip's, at 1970-01-01 + the time since start, not set (the esp
     * variant's default, `hil-agent --clock unset`); otherwise it is the host's
     * CLOCK_REALTIME, set (the native variant's default, `--clock host`). `clock set`
     * moves it by an offset and marks it set. A reboot (re-exec) starts it over. */
    bool clock_unset;
    bool clock_was_set;     /* by clock_set */
    int64_t clock_offset_ns; /* added to the base (time since start, or CLOCK_REALTIME) */
    /* `--nvs <image>`: an ESP-IDF NVS partition image (esp-idf-nvs-partition-gen) whose
     * namespace "hil" provisions settings at boot (agent_port_t.nvs_get); NULL = none.
     * Read and checked (nvs_image.c) at the first nvs_get. */
    const char *nvs_path;
    int nvs_state;        /* 0 not read yet, 1 accepted, -1 refused (nvs_err says why) */
    uint8_t *nvs_buf;     /* the image file's bytes (freed by host_port_free) */
    size_t nvs_len;
    nvs_image_t nvs_img;
    char nvs_err[300];
} host_port_t;

/* Fill *port with the host implementation; hp must outlive the agent. */
void host_port_make(host_port_t *hp, agent_port_t *port);
/* What host_port_make and the port's calls allocated (the NVS image). */
void host_port_free(host_port_t *hp);

#endif
