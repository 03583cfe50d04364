// A real, decodable JPEG image generated in memory: the picture of VEI_POST_JPG and of any
// generator that needs an image body.
#pragma once

#include <cstddef>
#include <vector>

namespace vei::packets {

// A 128x96 grey picture, a light disc on diagonal stripes: a few KiB, baseline JFIF, so that any
// decoder (and tshark's image-jfif) reads it, and a request carrying it spans several TCP segments.
std::vector<std::byte> jpeg_image();

}  // namespace vei::packets
