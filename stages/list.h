// The built-in stages, in the order `veipipe stages` lists them. Adding a stage: its file pair in
// stages/ (ending with VEI_STAGE(name, Class)) and its name here.
#pragma once

#define VEI_BUILTIN_STAGES(X) \
  X(pcap)                   \
  X(control)                \
  X(live)                   \
  X(icmp)                   \
  X(stream)                 \
  X(http)                   \
  X(dns)                    \
  X(smtp)                   \
  X(sip)                    \
  X(ssh)                    \
  X(tls)                    \
  X(traceroute)             \
  X(synscan)                \
  X(script)                 \
  X(filter)                 \
  X(snaplen)                \
  X(chop)                   \
  X(rewrite)                \
  X(merge)                  \
  X(pace)                   \
  X(file)                   \
  X(nic)

namespace vei {
class Stage;
namespace builtin {
#define VEI_DECLARE_STAGE(name) const Stage& name();
VEI_BUILTIN_STAGES(VEI_DECLARE_STAGE)
#undef VEI_DECLARE_STAGE
}  // namespace builtin
}  // namespace vei
