/* test_pem.h - throwaway test certificates and keys: a self-signed EC P-256
 * certificate and its key, a second such pair, and an RSA key (generated
 * with openssl for these unit tests only; not used anywhere else). */
#ifndef TEST_PEM_H
#define TEST_PEM_H

static const char test_cert_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBezCCASGgAwIBAgIUZMcqw5kvzE27wL9NViaiRdKgEmUwCgYIKoZIzj0EAwIw\n"
    "EzERMA8GA1UEAwwIaGlsLXRlc3QwHhcNMjYxMTIxMDUzNTU2WhcNMzYxMTE4MDUz\n"
    "NTU2WjATMREwDwYDVQQDDAhoaWwtdGVzdDBZMBMGByqGSM49AgEGCCqGSM49AwEH\n"
    "A0IABL7w/ZZA6yXItJR5Z8Qm2QVGXSiy588jbmWOY6n00UCG8gsaANWuEofEyepZ\n"
    "VfD2mnyJQCDJFOhRjpctd87pDRyjUzBRMB0GA1UdDgQWBBRG0zufQbJxljjqT06j\n"
    "tz3mnsRwRzAfBgNVHSMEGDAWgBRG0zufQbJxljjqT06jtz3mnsRwRzAPBgNVHRMB\n"
    "Af8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQDSHqssWRONKcuEyxg0ZEM+OyOP\n"
    "zrekjFTrmGicyVa9bQIgEqU+8aYBriVG1iyJqCLhOTdm8KqSjCUioxwOCfLzlXo=\n"
    "-----END CERTIFICATE-----\n";

static const char test_key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgBvWGBe4oOPzgwbMK\n"
    "Dr/k+qBTk3CZYhXMPHD3+do9DBihRANCAAS+8P2WQOslyLSUeWfEJtkFRl0osufP\n"
    "I25ljmOp9NFAhvILGgDVrhKHxMnqWVXw9pp8iUAgyRToUY6XLXfO6Q0c\n"
    "-----END PRIVATE KEY-----\n";

/* A second EC P-256 key and its own self-signed certificate (CN hil-test-2):
 * neither matches the pair above. */
static const char test_key2_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgkqnUbgfdHUCLHrcQ\n"
    "sDMeUWq18Uzw4eAdWMg5aqWilhuhRANCAASBlib4PQZmrH+G4vs02d3uz5MEUfbL\n"
    "zxTuFy7nRpaTfLrsFftQ9X2RgpHsDM3FUTE4R0C69oZfYJblVfRFgzor\n"
    "-----END PRIVATE KEY-----\n";

static const char test_cert2_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBgDCCASWgAwIBAgIUVzGhQ1Dx5w7SY17kprxvHRB0KBowCgYIKoZIzj0EAwIw\n"
    "FTETMBEGA1UEAwwKaGlsLXRlc3QtMjAeFw0yNjExMzAwNzI0MzRaFw0zNjExMjcw\n"
    "NzI0MzRaMBUxEzARBgNVBAMMCmhpbC10ZXN0LTIwWTATBgcqhkjOPQIBBggqhkjO\n"
    "PQMBBwNCAASBlib4PQZmrH+G4vs02d3uz5MEUfbLzxTuFy7nRpaTfLrsFftQ9X2R\n"
    "gpHsDM3FUTE4R0C69oZfYJblVfRFgzoro1MwUTAdBgNVHQ4EFgQUfcrEE4PWyMlm\n"
    "sv7CJUBIWjDUy80wHwYDVR0jBBgwFoAUfcrEE4PWyMlmsv7CJUBIWjDUy80wDwYD\n"
    "VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNJADBGAiEAo7RAC+RfcwUdsb2qtsMv\n"
    "fEG7L0IcaK/5BVzlvDkjHvsCIQD0/L2lIJmLs0FoxZ2X6iuOLX8QWDErhVWuSxq8\n"
    "O3hZfA==\n"
    "-----END CERTIFICATE-----\n";

/* An RSA-1024 key (a key of another type than the EC certificates). */
static const char test_rsa_key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIICdwIBADANBgkqhkiG9w0BAQEFAASCAmEwggJdAgEAAoGBANZJu7BocLAVjLcF\n"
    "oTAFBvOCoOESV/OersXSuzs2Gwh4hzoUOVBmMGJSC9Osf/ioT22ajXtaW4PyGQFj\n"
    "bvpeDP6xW8Mv4WQijh/sG542WMGAO/CflH27PZVaxTEkuzP8HIfExDn1nTiM9v6B\n"
    "tAf8uRZlaDxNQc6MuFWHuz9GtPzlAgMBAAECgYA3bNTN+QWEld5SjHM3j2VP4K6p\n"
    "6Gu1SIreAfaJhyIQ29PmMsrsP7IuDBihBFIJR8dbiwkjKajYBOtwz34p5d+oG48f\n"
    "lNxogGRW3UnNsQp5VjYk4qFlp55ntwRTsUOMBXbOXGKWs6JUjyaiuFutUfrwjniU\n"
    "IRsQWpE2B9VIAB6DtQJBAPImjYbjyzDujF4blrVLbw+DU5PXKZdXK/5lULqwxhCJ\n"
    "v6E/7ho64y0a62EMZXhWba5fKbcF70RyTZ/jG9I0cXcCQQDiizsBr9hU2SSHHlMv\n"
    "Md0wvYUwAtsIwp0rrxPngeo2YMAWF2/u4XovzRCe46/IPICcrgbL8zU0hrhn+6lo\n"
    "K7uDAkEA36lWbbI3usGLq1zGLjw3n9eIOfSxuNTOkNIZ5+Zhe2MQOitnjJi5vq6v\n"
    "nFsr2iPSeQ3y5Nc5cjo1kqndx6Gi7wJAYmOTwfzMGLWh/qj1+cZPSW7WHG7xEBHt\n"
    "zt4f5+jtfqZwZmfRbk8xEPef41IBsxZLyUBvpT5AekqUZlzPS3XK3wJBANJwgeHt\n"
    "oFWiQmN2vaScCw7ohsdjnSCNBukOS/rxuihcAs1az6OqKvp+TXJHkEot+S5r47ww\n"
    "NOePZuKHFQDZvlU=\n"
    "-----END PRIVATE KEY-----\n";

#endif
