/* test_pem.h - a throwaway self-signed EC P-256 test certificate and key
 * (generated for these unit tests only; not used anywhere else). */
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

#endif
