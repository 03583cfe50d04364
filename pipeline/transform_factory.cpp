#include "pipeline/transform_factory.h"

#include <fmt/format.h>

#include <sstream>
#include <stdexcept>

#include "pipeline/source_factory.h"
#include "stages/rewrite.h"
#include "stages/filter.h"
#include "stages/snaplen.h"

namespace vei {

namespace {

// Space-separated `OLD:NEW` maps, appended to `to`.
void add_maps(const Value& v, std::vector<AddressMap>& to) {
  std::istringstream words(v.text);
  for (std::string word; words >> word;) to.push_back(parse_address_map(word));
}

std::unique_ptr<Transform> make_rewriter(const Node& node, uint32_t linktype, std::vector<Diagnostic>& errors) {
  RewriteOptions options;
  const Value* at = nullptr;  // the value being read, for the diagnostic
  try {
    // The maps of one side come before those of both: the first that matches applies.
    at = &param(node, "srcip");
    add_maps(*at, options.src_ip);
    at = &param(node, "dstip");
    add_maps(*at, options.dst_ip);
    at = &param(node, "ip");
    add_maps(*at, options.src_ip);
    add_maps(*at, options.dst_ip);
    for (auto [name, mac] : {std::pair{"srcmac", &options.src_mac}, std::pair{"dstmac", &options.dst_mac}}) {
      at = &param(node, name);
      if (!at->given) continue;
      *mac = packets::parse_mac(at->text);
      if (!*mac) throw std::invalid_argument(fmt::format("'{}' is not an Ethernet address (expected the form aa:bb:cc:dd:ee:ff)", at->text));
    }
    at = nullptr;
    return std::make_unique<AddressRewriter>(std::move(options), linktype);
  } catch (const std::invalid_argument& e) {
    errors.push_back({at ? at->span : node.span, e.what(), ""});
    return nullptr;
  }
}

}  // namespace

std::unique_ptr<Transform> make_transform(const Node& node, uint32_t linktype, uint32_t snaplen,
                                          std::vector<Diagnostic>& errors) {
  const std::string_view stage = node.spec->name;
  if (stage == "snaplen") {
    const Value& length = param(node, "length");
    if (length.integer < 1 || length.integer > UINT32_MAX) {
      errors.push_back({length.span, "snaplen must be at least 1 byte", ""});
      return nullptr;
    }
    return std::make_unique<SnaplenCutter>(static_cast<uint32_t>(length.integer));
  }
  if (stage == "filter") {
    const Value& expression = param(node, "expression");
    try {
      return std::make_unique<PacketFilter>(expression.text, linktype, snaplen);
    } catch (const std::runtime_error& e) {
      errors.push_back({expression.span, e.what(), "filters use tcpdump's syntax: pcap-filter(7)"});
      return nullptr;
    }
  }
  if (stage == "rewrite") return make_rewriter(node, linktype, errors);
  throw std::logic_error(fmt::format("no builder for transform stage '{}'", stage));
}

std::vector<std::unique_ptr<Transform>> make_line_transforms(const Pipeline& line, uint32_t linktype, uint32_t snaplen) {
  std::vector<Diagnostic> errors;
  std::vector<std::unique_ptr<Transform>> chain;
  for (size_t i = 1; i < line.nodes.size(); ++i) chain.push_back(make_transform(line.nodes[i], linktype, snaplen, errors));
  if (!errors.empty()) throw DescriptionError(line.where, line.text, std::move(errors));
  return chain;
}

}  // namespace vei
