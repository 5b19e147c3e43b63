/* SPDX-License-Identifier: MIT */
/* shadowmeshctl genkey: a new X25519 private key, base64, for identity.private_key_file. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "i18n.h"
#include "noise.h"

int ctl_genkey(struct ctl *ctl, int argc, char **argv) {
        uint8_t priv[NOISE_PUBLIC_KEY_LEN], pub[NOISE_PUBLIC_KEY_LEN];
        char b64[45];

        if (argc > 1)
                return ctl_usage_error(_("genkey takes no arguments"));
        if (ctl->json)
                return ctl_usage_error(_("--json is for status, list and netcheck"));
        if (sodium_init() < 0)
                return ctl_error(CTL_EXIT_FAILURE, _("cannot initialise libsodium"));

        /* `shadowmeshctl genkey > key` in a file others may read: the daemon warns about it
         * at every start, say it now, when it is easy to fix. The key is still written (the
         * file exists already; refusing would only leave it empty). */
        struct stat st;
        if (fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0077))
                fprintf(stderr,
                        _("shadowmeshctl: warning: the key file is readable by other users "
                          "(mode %04o); run 'chmod 600' on it, or write it with "
                          "'(umask 077; shadowmeshctl genkey > FILE)'\n"),
                        (unsigned) (st.st_mode & 07777));

        noise_generate_keypair(priv, pub);
        config_format_key(priv, b64);
        sodium_memzero(priv, sizeof(priv));
        puts(b64);
        sodium_memzero(b64, sizeof(b64));
        return ctl_finish_stdout(CTL_EXIT_OK);
}
