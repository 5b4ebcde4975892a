/* pstrain: entry point and subcommand dispatch. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    printf("pstrain\n");
    return 0;
}
