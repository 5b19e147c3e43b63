#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Compare D-Bus interface descriptions for introspect.sh.

  apicheck.py normalise XML [INTERFACE]
      One line per member of INTERFACE (default org.shadowmesh1.Tunnel) in an introspection
      document, sorted, in a form that ignores formatting, attribute order and annotations other
      than EmitsChangedSignal:
          method Connect(in s peer, in a{sv} options)
          property Mtu u read emits=const
          signal Foo(s name)
      An argument's direction defaults to "in" for methods, EmitsChangedSignal to "true".

  apicheck.py doc XML TXT [INTERFACE]
      Checks the live interface in XML against the iwd-style API document TXT (Methods,
      Signals and Properties sections, "type Name(type arg, ...)", "void Name(type arg, ...)"
      and "type Name [readonly, const]") and prints one line per difference, nothing when they
      agree. Out-arguments are compared by
      type (the document names only their type).
"""
import re
import sys
import xml.etree.ElementTree as ET

DEFAULT_INTERFACE = "org.shadowmesh1.Tunnel"
EMITS = "org.freedesktop.DBus.Property.EmitsChangedSignal"

# The document's type names (as iwd's and BlueZ's API documents spell them).
DOC_TYPES = {
    "string": "s", "dict": "a{sv}", "boolean": "b", "byte": "y", "int16": "n", "uint16": "q",
    "int32": "i", "uint32": "u", "int64": "x", "uint64": "t", "double": "d", "object": "o",
    "variant": "v", "fd": "h", "array{string}": "as", "array{object}": "ao", "array{byte}": "ay",
    "array{dict}": "aa{sv}", "void": "",
}


def find_interface(path, name):
    root = ET.parse(path).getroot()
    for iface in root.iter("interface"):
        if iface.get("name") == name:
            return iface
    raise SystemExit("%s: no <interface name=\"%s\">" % (path, name))


def members(iface):
    """{(kind, name): details} with details normalised."""
    out = {}
    for m in iface.findall("method"):
        args = [(a.get("direction", "in"), a.get("type"), a.get("name", ""))
                for a in m.findall("arg")]
        out[("method", m.get("name"))] = args
    for s in iface.findall("signal"):
        args = [(a.get("type"), a.get("name", "")) for a in s.findall("arg")]
        out[("signal", s.get("name"))] = args
    for p in iface.findall("property"):
        emits = "true"
        for a in p.findall("annotation"):
            if a.get("name") == EMITS:
                emits = a.get("value")
        out[("property", p.get("name"))] = (p.get("type"), p.get("access"), emits)
    return out


def normalise(path, name):
    lines = []
    for (kind, member), d in members(find_interface(path, name)).items():
        if kind == "method":
            lines.append("method %s(%s)" % (member, ", ".join("%s %s %s" % a for a in d)))
        elif kind == "signal":
            lines.append("signal %s(%s)" % (member, ", ".join("%s %s" % a for a in d)))
        else:
            lines.append("property %s %s %s emits=%s" % ((member,) + d))
    return sorted(lines)


def doc_type(t, where, problems):
    if t not in DOC_TYPES:
        problems.append("%s: unknown type name '%s' in the document" % (where, t))
        return "?"
    return DOC_TYPES[t]


def parse_doc(path):
    """Methods, signals and properties of the document: {(kind, name): details}, problems."""
    text = open(path, encoding="utf-8").read()
    found, problems = {}, []
    section = None
    for line in text.splitlines():
        head = re.match(r"^(Methods|Properties|Signals|Errors)\b", line)
        if head:
            section = head.group(1)
            line = line[len(section):]
        elif line and not line[0].isspace():
            section = None
        if section == "Methods":
            m = re.match(r"^\t+([\w{}]+) (\w+)\((.*)\)\s*$", line)
            if m:
                where = "method " + m.group(2)
                args = []
                for arg in filter(None, (a.strip() for a in m.group(3).split(","))):
                    t, _, n = arg.partition(" ")
                    args.append(("in", doc_type(t, where, problems), n))
                ret = doc_type(m.group(1), where, problems)
                if ret:
                    args.append(("out", ret, None))
                found[("method", m.group(2))] = args
        elif section == "Signals":
            m = re.match(r"^\t+void (\w+)\((.*)\)\s*$", line)
            if m:
                where = "signal " + m.group(1)
                args = []
                for arg in filter(None, (a.strip() for a in m.group(2).split(","))):
                    t, _, n = arg.partition(" ")
                    args.append((doc_type(t, where, problems), n))
                found[("signal", m.group(1))] = args
        elif section == "Properties":
            m = re.match(r"^\t+([\w{}]+) (\w+) \[([^]]*)\]\s*$", line)
            if m:
                flags = [f.strip() for f in m.group(3).split(",")]
                access = "read" if "readonly" in flags else \
                    "write" if "writeonly" in flags else "readwrite"
                found[("property", m.group(2))] = (
                    doc_type(m.group(1), "property " + m.group(2), problems), access,
                    "const" in flags)
    return found, problems


def compare_doc(xml_path, doc_path, name):
    live = members(find_interface(xml_path, name))
    doc, problems = parse_doc(doc_path)
    for (kind, member), d in sorted(live.items()):
        if (kind, member) not in doc:
            problems.append("%s %s is live but not documented" % (kind, member))
            continue
        want = doc[(kind, member)]
        if kind == "method":
            got = [(a[0], a[1], a[2] if a[0] == "in" else None) for a in d]
            if got != want:
                problems.append("method %s: live %s, documented %s" % (member, got, want))
        elif kind == "signal":
            if list(d) != want:
                problems.append("signal %s: live %s, documented %s" % (member, list(d), want))
        elif kind == "property":
            got = (d[0], d[1], d[2] == "const")
            if got != want:
                problems.append("property %s: live (type, access, const) %s, documented %s"
                                % (member, got, want))
    for kind, member in sorted(doc):
        if (kind, member) not in live:
            problems.append("%s %s is documented but not live" % (kind, member))
    return problems


def main(argv):
    if len(argv) >= 2 and argv[0] == "normalise":
        print("\n".join(normalise(argv[1], argv[2] if len(argv) > 2 else DEFAULT_INTERFACE)))
    elif len(argv) >= 3 and argv[0] == "doc":
        for p in compare_doc(argv[1], argv[2], argv[3] if len(argv) > 3 else DEFAULT_INTERFACE):
            print(p)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
