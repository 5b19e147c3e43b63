/* SPDX-License-Identifier: MIT */
/* shadowmeshctl pubkey: the public key of the private key on standard input (as `wg pubkey`). */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "ctl.h"
#include "i18n.h"
#include "noise.h"

int ctl_pubkey(struct ctl *ctl, int argc, char **argv) {
        uint8_t priv[NOISE_PUBLIC_KEY_LEN], pub[NOISE_PUBLIC_KEY_LEN];
        char line[256], b64[45];
        bool ok;
        int r;

        if (argc > 1)
                return ctl_usage_error(_("pubkey takes no arguments (the private key is read "
                                         "from standard input)"));
        if (ctl->json)
                return ctl_usage_error(_("--json is for status, list and netcheck"));
        if (sodium_init() < 0)
                return ctl_error(CTL_EXIT_FAILURE, _("cannot initialise libsodium"));

        /* One line: the key, optionally surrounded by blanks (a key file ends in a newline). */
        ok = fgets(line, sizeof(line), stdin) != NULL;
        if (ok) {
                char *k = line + strspn(line, " \t");
                k[strcspn(k, " \t\r\n")] = 0;
                r = config_parse_key(k, priv);
        } else
                r = -ENODATA;
        sodium_memzero(line, sizeof(line));
        if (r == -ENODATA)
                return ctl_error(CTL_EXIT_FAILURE,
                                 _("expected a private key on standard input"));
        if (r < 0)
                return ctl_error(CTL_EXIT_FAILURE, _("not a private key: expected 44 base64 "
                                                     "characters or 64 hex digits"));
        r = noise_public_from_private(pub, priv);
        sodium_memzero(priv, sizeof(priv));
        if (r < 0)
                return ctl_error(CTL_EXIT_FAILURE, _("invalid private key"));
        config_format_key(pub, b64);
        puts(b64);
        return ctl_finish_stdout(CTL_EXIT_OK);
}
