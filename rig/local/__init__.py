"""What the rig keeps on the runner machine itself, below every stage that starts a process or
holds a secret (pki, broker/, host/, boards/):

    children.py     child processes: started to die with the rig (`die_with_parent`), stopped
                    cleanly (`terminate`), SIGTERM/SIGHUP as Ctrl-C (`interrupt_on_termination`)
    user_tmp.py     the user's private directory in the system temp dir: per-process secret
                    directories (0700) and files (0600), notes of helper processes, and the
                    sweep of what a killed run left there
    locks.py        flocks between processes (PKI generation, a board, a port) and the check
                    that a shared directory is private (0700, ours)
    cache.py        the rig's cache directory ($HIL_CACHE_DIR, ...); cache_dir.sh is the same
                    rule for the shell scripts (hil.sh, firmware/host/mbedtls3/fetch.sh)
"""
