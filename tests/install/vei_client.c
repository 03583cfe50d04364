/* An out-of-tree C client of the installed <veipipe/vei.h>: tests/install_test.sh builds it with
 * gcc -std=c11 -Wall -Wextra -Wpedantic -Werror, so the header must stay plain C. Transcribes
 * BACKGROUND to OUTPUT with PINGS VEI_PING events injected before the transcription starts, then
 * prints how many packets the library accepted.
 *
 *   vei_client BACKGROUND OUTPUT PINGS */
#include <veipipe/vei.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char* argv[]) {
  if (argc != 4) {
    fprintf(stderr, "usage: vei_client BACKGROUND OUTPUT PINGS\n");
    return 2;
  }
  FILE* background = fopen(argv[1], "rb");
  FILE* output = fopen(argv[2], "wb");
  if (!background || !output) {
    perror(background ? argv[2] : argv[1]);
    return 1;
  }
  int status = initialize_vei_library(background, output);
  if (status != 0) {
    fprintf(stderr, "vei_client: initialize_vei_library returned %d\n", status);
    return 1;
  }
  int accepted = 0;
  for (int i = atoi(argv[3]); i > 0; --i) {
    const int packets = inject_event(VEI_PING);
    if (packets < 0) {
      fprintf(stderr, "vei_client: inject_event returned %d\n", packets);
      vei_finish();
      return 1;
    }
    accepted += packets;
  }
  status = start_vei_transcription();
  vei_finish();
  if (status != 0) {
    fprintf(stderr, "vei_client: start_vei_transcription returned %d\n", status);
    return 1;
  }
  printf("%d\n", accepted);
  return 0;
}
