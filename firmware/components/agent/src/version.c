/* version.c - what this build is (bottom of the call graph: no agent_t). */
#include "agent.h"
#include "agent_mbedtls_compat.h"

#ifndef AGENT_BUILD_ID
#define AGENT_BUILD_ID __DATE__ "-" __TIME__
#endif

const char *agent_build_id(void)
{
    return AGENT_BUILD_ID;
}

const char *agent_mbedtls_version(void)
{
    return AGENT_MBEDTLS_VERSION_STRING;
}
