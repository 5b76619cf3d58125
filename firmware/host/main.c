/* main.c - hil-agent for Linux: the portable core on stdin/stdout. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "host_port.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: hil-agent [--state <path>] [--nvs <image>] [--clock unset|host] [--version]\n"
               "  --state <path>  settings file standing for flash/NVS (default ./hil-agent.state)\n"
               "  --nvs <image>   an ESP-IDF NVS partition image: its namespace \"hil\" provisions\n"
               "                  settings for this boot, as an esp-mqtt app reads them\n"
               "  --clock unset   the board starts without a clock, like a chip: 1970-01-01 + uptime\n"
               "                  until `clock set` (default of the esp variant)\n"
               "  --clock host    the board starts with the host's clock (default of the native variant)\n"
               "  --version       print the version and exit\n"
               "This build: variant %s, %u-bit.\n"
               "The console (commands and log lines) is on stdin/stdout; see firmware/README.md.\n",
            agent_variant(), agent_bits());
}

int main(int argc, char **argv)
{
    host_port_t hp;
    agent_port_t port;
    memset(&hp, 0, sizeof(hp));
    hp.state_path = "./hil-agent.state";
    hp.argv = argv;
    hp.in_fd = 0;
    hp.out_fd = 1;
    hp.power_cut_file = getenv("HIL_AGENT_POWER_CUT_FILE");
    if (hp.power_cut_file && !hp.power_cut_file[0]) hp.power_cut_file = NULL;
    /* a chip has no clock until the rig sets one: so has the variant built like it */
    hp.clock_unset = strcmp(agent_variant(), "esp") == 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--state") == 0 && i + 1 < argc) {
            hp.state_path = argv[++i];
        } else if (strcmp(argv[i], "--nvs") == 0 && i + 1 < argc) {
            hp.nvs_path = argv[++i];
        } else if (strcmp(argv[i], "--clock") == 0 && i + 1 < argc) {
            const char *mode = argv[++i];
            if (strcmp(mode, "unset") == 0) {
                hp.clock_unset = true;
            } else if (strcmp(mode, "host") == 0) {
                hp.clock_unset = false;
            } else {
                fprintf(stderr, "hil-agent: --clock must be 'unset' or 'host', not '%s'\n", mode);
                usage(stderr);
                return 2;
            }
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("hil-agent %s (mbedtls %s, %u-bit, %s, build %s)\n", AGENT_VERSION,
                   agent_mbedtls_version(), agent_bits(), agent_variant(), agent_build_id());
            return 0;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "hil-agent: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);

    host_port_make(&hp, &port);
    agent_t *a = agent_new(&port);
    if (!a) {
        fprintf(stderr, "hil-agent: out of memory\n");
        return 1;
    }
    agent_run(a);
    agent_delete(a);
    host_port_free(&hp);
    return 0;
}
