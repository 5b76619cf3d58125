/* rng.c - the core's CTR-DRBG, seeded from the port's entropy on first use. */
#include "agent_internal.h"

static int port_entropy(void *ctx, unsigned char *buf, size_t len)
{
    agent_t *a = ctx;
    return a->port.random(a->port.ctx, buf, len) == 0 ? 0 : MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
}

static int ensure_drbg(agent_t *a)
{
    static const unsigned char pers[] = "hil-agent";
    if (a->drbg_ready) return 0;
    mbedtls_ctr_drbg_init(&a->drbg);
    int ret = mbedtls_ctr_drbg_seed(&a->drbg, port_entropy, a, pers, sizeof(pers) - 1);
    if (ret != 0) {
        mbedtls_ctr_drbg_free(&a->drbg);
        return ret;
    }
    a->drbg_ready = true;
    return 0;
}

int agent_rng(void *ctx, unsigned char *buf, size_t len)
{
    agent_t *a = ctx;
    int ret = ensure_drbg(a);
    if (ret != 0) return ret;
    return mbedtls_ctr_drbg_random(&a->drbg, buf, len);
}

void agent_rng_free(agent_t *a)
{
    if (a->drbg_ready) mbedtls_ctr_drbg_free(&a->drbg);
    a->drbg_ready = false;
}
