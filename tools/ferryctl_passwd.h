/* SPDX-License-Identifier: Apache-2.0 */
/* `ferryctl passwd`: writes mosquitto-format password files (tools/ferryctl_passwd.c). */
#ifndef FERRY_TOOLS_FERRYCTL_PASSWD_H
#define FERRY_TOOLS_FERRYCTL_PASSWD_H

extern const char ferryctl_passwd_help[];

/* Runs `ferryctl passwd [-D] FILE USER` (argv after "passwd"). Returns the exit code: 0 done, 1
 * failed, 2 usage error. Needs no broker. */
int ferryctl_passwd(int argc, char **argv);

/* Asks for a password on the terminal without echo. 0, or -1 at end of input. */
int ferryctl_ask_password(char *buf, unsigned long n);

#endif
