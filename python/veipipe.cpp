// The Python module `veipipe`: an Engine (pipeline/engine.h) driven from Python.
//
//   import veipipe
//   e = veipipe.Engine("pcap($bg) -> file(out.pcap)", defines={"bg": "campus.pcap"})
//   e.start(); e.inject(scapy_packet); e.inject("icmp(dst=10.0.0.9, count=3)")
//   status = e.wait(); print(e.stats()["packets"])
//
// Every call that may block (opening inputs, starting, injecting, waiting) releases the GIL, so
// that Python threads inject while another waits.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <vector>

#include "pipeline/engine.h"

namespace py = pybind11;

namespace {

// The bytes of anything `bytes(obj)` accepts, copied while the GIL is held: a bytearray could
// change under another thread once it is released. Objects with the buffer protocol (bytes,
// bytearray, memoryview, numpy arrays) are read directly; others, a Scapy packet, through bytes().
std::vector<std::byte> frame_bytes(const py::handle& packet) {
  // bytes(5) is five zero bytes: a number is a mistake, not a frame.
  if (PyLong_Check(packet.ptr()))
    throw py::type_error("inject takes a frame (bytes, a Scapy packet) or a stage's text, not a number");
  py::object source = py::reinterpret_borrow<py::object>(packet);
  if (!PyObject_CheckBuffer(source.ptr())) source = py::reinterpret_steal<py::object>(PyObject_Bytes(source.ptr()));
  if (!source) throw py::error_already_set();
  Py_buffer view;
  if (PyObject_GetBuffer(source.ptr(), &view, PyBUF_C_CONTIGUOUS) != 0) throw py::error_already_set();
  const auto* begin = static_cast<const std::byte*>(view.buf);
  std::vector<std::byte> bytes(begin, begin + view.len);
  PyBuffer_Release(&view);
  return bytes;
}

py::dict to_dict(const vei::Stats& s) {
  py::list sources, live, transforms;
  for (const auto& src : s.sources)
    sources.append(py::dict(py::arg("name") = src.name, py::arg("packets") = src.packets, py::arg("bytes") = src.bytes,
                            py::arg("skipped") = src.skipped, py::arg("filtered") = src.filtered,
                            py::arg("disordered") = src.disordered, py::arg("dropped") = src.dropped,
                            py::arg("offset_ns") = src.offset_ns));
  for (const auto& l : s.live)
    live.append(py::dict(py::arg("name") = l.name, py::arg("packets") = l.packets, py::arg("bytes") = l.bytes,
                         py::arg("kernel_dropped") = l.kernel_dropped, py::arg("if_dropped") = l.if_dropped));
  for (const auto& t : s.transforms)
    transforms.append(
        py::dict(py::arg("name") = t.name, py::arg("changed") = t.changed, py::arg("dropped") = t.dropped));
  // The keys of `veipipe run --stats-json`.
  py::dict d(py::arg("packets") = s.packets, py::arg("bytes") = s.bytes, py::arg("captured_bytes") = s.captured_bytes,
             py::arg("seconds") = s.seconds, py::arg("dropped_after_end") = s.dropped_after_end,
             py::arg("packets_in_place") = s.packets_in_place, py::arg("packets_copied") = s.packets_copied,
             py::arg("accepted_events") = s.accepted_events, py::arg("refused_events") = s.refused_events,
             py::arg("events") = s.events, py::arg("late_events") = s.late_events, py::arg("sources") = sources,
             py::arg("live") = live, py::arg("transforms") = transforms, py::arg("warnings") = s.warnings,
             py::arg("error") = s.error);
  if (s.pace)
    d["pace"] = py::dict(py::arg("p50_ns") = s.pace->p50, py::arg("p99_ns") = s.pace->p99,
                         py::arg("max_ns") = s.pace->max, py::arg("samples") = s.pace->samples);
  if (s.nic)
    d["nic"] = py::dict(py::arg("sent") = s.nic->sent, py::arg("failed") = s.nic->failed,
                        py::arg("retried") = s.nic->retried);
  return d;
}

vei::Engine make_engine(const std::string& description, const std::string& where, const vei::Defines& defines,
                        bool quiet) {
  py::gil_scoped_release release;
  return vei::Engine::from_description(where, description, quiet, defines);
}

}  // namespace

PYBIND11_MODULE(veipipe, m) {
  m.doc() = "veipipe: weave packets from several sources into one timeline (README.md, section Python)";
  // A description's caret diagnostics, as `veipipe` prints them, are the exception's message.
  static py::exception<vei::DescriptionError> description_error(m, "DescriptionError", PyExc_ValueError);
  static py::exception<vei::InjectError> inject_error(m, "InjectError", PyExc_RuntimeError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const vei::DescriptionError& e) {
      description_error(e.what());
    } catch (const vei::InjectError& e) {
      inject_error(e.what());
    }
  });

  py::class_<vei::Engine>(m, "Engine", "A pipeline built from a description: parsed, planned, its inputs open.")
      .def(py::init(&make_engine), py::arg("description"), py::arg("where") = "<python>",
           py::arg("defines") = vei::Defines{}, py::arg("quiet") = false,
           "Parses the description (`defines` give or override its $NAMEs) and opens its inputs. Raises "
           "DescriptionError for a bad description, RuntimeError for an input that cannot be opened.")
      .def("start", &vei::Engine::start, py::call_guard<py::gil_scoped_release>(),
           "Opens the event sources and the output, and starts the run.")
      .def("wait", &vei::Engine::wait, py::call_guard<py::gil_scoped_release>(),
           "Blocks until the run ends; returns 0 ok, 1 runtime failure (stats()['error']), 3 damaged input.")
      .def("stop", &vei::Engine::stop, py::call_guard<py::gil_scoped_release>(),
           "Stops reading; everything already merged is still written.")
      .def(
          "inject",
          [](vei::Engine& engine, const py::object& packet, std::optional<int64_t> at_ns) -> size_t {
            if (py::isinstance<py::str>(packet)) {
              if (at_ns) throw py::type_error("at_ns is for frames: a stage takes its time from its own at=");
              const auto stage = packet.cast<std::string>();
              py::gil_scoped_release release;
              return engine.inject(stage);
            }
            const auto bytes = frame_bytes(packet);
            py::gil_scoped_release release;
            return engine.inject(std::span<const std::byte>(bytes), at_ns);
          },
          py::arg("packet"), py::arg("at_ns") = py::none(),
          "Injects a frame (anything bytes() accepts: bytes, a Scapy packet) at the output's now, or at at_ns "
          "on the output timeline; or a source stage given as text, e.g. 'icmp(dst=10.0.0.9, count=3)'. "
          "Returns how many packets were accepted; raises InjectError when refused.")
      .def_property_readonly("linktype", &vei::Engine::linktype, "The output's LINKTYPE_ value.")
      .def("stats", [](const vei::Engine& engine) { return to_dict(engine.stats()); },
           "The run's statistics as a dict, with the keys of `veipipe run --stats-json`; exact after wait().")
      .def("progress", &vei::Engine::progress, "A one-line progress summary.");
}
