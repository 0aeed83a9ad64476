/*  =========================================================================
    dbt_main - the dungbeetle daemon: argv, config, start actors, wait
    =========================================================================
*/
#include "dbt_classes.h"

int
main (int argc, char **argv)
{
    (void) argc;
    (void) argv;
    return 0;
}
