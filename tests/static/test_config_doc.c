/* docs/configuration.md names every setting each daemon reads: the daemons'
 * own tables (`ncc-<name> --help`) are the source, so a setting added without
 * regenerating the file (scripts/gen-config-doc.sh) fails here. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ncc_test.h"

static const char *const daemons[] = {"gateway", "directory", "calls",   "history",
                                      "faq",     "sms",       "summary", "report"};

Test(config_doc, every_setting_of_every_daemon_is_documented)
{
    char *doc = ncct_read_file("docs/configuration.md");
    cr_assert_not_null(doc, "docs/configuration.md is missing (scripts/gen-config-doc.sh)");
    for (size_t i = 0; i < sizeof daemons / sizeof daemons[0]; i++) {
        char command[512];
        snprintf(command, sizeof command, "%s/ncc-%s --help", ncct_bin_dir(), daemons[i]);
        FILE *help = popen(command, "r");
        cr_assert_not_null(help);
        char line[1024];
        int settings = 0;
        while (fgets(line, sizeof line, help)) {
            if (strncmp(line, "  NCC_", 6) != 0)
                continue;
            char name[128];
            cr_assert_eq(sscanf(line + 2, "%127s", name), 1);
            char quoted[160];
            snprintf(quoted, sizeof quoted, "`%s`", name);
            cr_expect_not_null(strstr(doc, quoted),
                               "ncc-%s reads %s but docs/configuration.md does not name it "
                               "(run scripts/gen-config-doc.sh)",
                               daemons[i], name);
            settings++;
        }
        cr_assert_eq(pclose(help), 0, "%s failed", command);
        cr_assert_gt(settings, 3, "ncc-%s --help listed no settings", daemons[i]);
    }
    free(doc);
}
