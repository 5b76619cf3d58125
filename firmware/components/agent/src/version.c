/* version.c - what this build is (bottom of the call graph: no agent_t). */
#include "agent.h"
#include "agent_mbedtls_compat.h"

#ifndef AGENT_BUILD_ID
#define AGENT_BUILD_ID __DATE__ "-" __TIME__
#endif

/* The host build defines AGENT_VARIANT ("native" or "esp"); a board build
 * does not. */
#ifndef AGENT_VARIANT
#if defined(ESP_PLATFORM)
#define AGENT_VARIANT "esp-idf"
#else
#define AGENT_VARIANT "native"
#endif
#endif

const char *agent_build_id(void)
{
    return AGENT_BUILD_ID;
}

const char *agent_mbedtls_version(void)
{
    return AGENT_MBEDTLS_VERSION_STRING;
}

const char *agent_variant(void)
{
    return AGENT_VARIANT;
}

unsigned agent_bits(void)
{
    return (unsigned)(sizeof(void *) * 8u);
}
