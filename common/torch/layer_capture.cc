#include "common/torch/layer_capture.h"

#include <torch/csrc/jit/ir/alias_analysis.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/ir/scope.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/inliner.h>

#include <algorithm>
#include <memory>
#include <unordered_map>

#include "common/torch/torch_status.h"

namespace nd {
namespace {

using torch::jit::Node;
using torch::jit::Value;

std::string Join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

// Module path a node of an inlined graph came from: the instance names along its inlined call
// stack, outermost first. "SELF" marks a call on the same module (e.g. ResNet.forward calling
// self._forward_impl) and adds no level; unnamed calls (free functions) add none either.
std::string NodePath(const Node* node) {
  auto callstack = node->callstack();
  if (!callstack) return "";
  std::string path;
  for (const auto& entry : (*callstack)->vec()) {
    const auto& info = std::get<2>(entry);
    if (!info) continue;
    const std::string name = info->instance_name();
    if (name.empty() || name == "SELF" || name == "INSTANCE_NAME_UNKNOWN") continue;
    if (!path.empty()) path += '.';
    path += name;
  }
  return path;
}

bool InsidePath(const std::string& node_path, const std::string& layer) {
  return node_path.size() >= layer.size() && node_path.compare(0, layer.size(), layer) == 0 &&
         (node_path.size() == layer.size() || node_path[layer.size()] == '.');
}

// Module path of every node of the graph, nested blocks included; the graph's return maps to "".
class PathIndex {
 public:
  explicit PathIndex(torch::jit::Graph& graph) { Visit(graph.block()); }
  const std::string& PathOf(const Node* node) const {
    static const std::string kRoot;
    auto it = paths_.find(node);
    return it == paths_.end() ? kRoot : it->second;
  }
  // Nodes in program order (depth first, a node after the nodes of its blocks, since it
  // produces its outputs after them). Return nodes are not listed.
  const std::vector<Node*>& nodes() const { return order_; }

 private:
  void Visit(torch::jit::Block* block) {
    for (Node* node : block->nodes()) {
      const std::string& path = paths_.emplace(node, NodePath(node)).first->second;
      for (torch::jit::Block* sub : node->blocks()) {
        // A block's return hands values to its owning node: same module path.
        paths_.emplace(sub->return_node(), path);
        Visit(sub);
      }
      order_.push_back(node);
    }
  }
  std::unordered_map<const Node*, std::string> paths_;
  std::vector<Node*> order_;
};

// The value `layer` outputs: the last value in program order produced inside the layer's path
// and used outside it.
StatusOr<Value*> FindLayerOutput(const torch::jit::Graph& graph, const PathIndex& index,
                                 const std::string& layer, const std::string& model_label) {
  Value* last = nullptr;
  for (Node* node : index.nodes()) {
    if (!InsidePath(index.PathOf(node), layer)) continue;
    for (Value* output : node->outputs()) {
      for (const torch::jit::Use& use : output->uses()) {
        if (!InsidePath(index.PathOf(use.user), layer)) {
          last = output;
          break;
        }
      }
    }
  }
  if (last == nullptr) {
    return NotFound("layer '" + layer + "' in " + model_label +
                    " is never called by forward, so it has no output to capture");
  }
  if (!last->type()->cast<c10::TensorType>()) {
    return InvalidArgument("layer '" + layer + "' in " + model_label + " outputs " +
                           last->type()->str() + ", not a tensor");
  }
  if (last->node()->owningBlock() != graph.block()) {
    return InvalidArgument("layer '" + layer + "' in " + model_label +
                           " is computed inside control flow (an if or a loop) of forward; "
                           "capture a module outside it");
  }
  return last;
}

// True if a node after `value`'s producer writes to `value` or to memory it aliases.
bool WrittenLater(const torch::jit::AliasDb& alias_db, const PathIndex& index, Value* value) {
  const torch::jit::ValueSet target{value};
  bool after = false;
  for (Node* node : index.nodes()) {
    if (node == value->node()) {
      after = true;
      continue;
    }
    if (after && alias_db.writesToAlias(node, target)) return true;
  }
  return false;
}

Status AddCaptureMethodImpl(torch::jit::Module& module, const std::vector<std::string>& layers,
                            const std::string& model_label, std::string* method_name) {
  const std::vector<std::string> paths = ListModulePaths(module);
  for (const std::string& layer : layers) {
    if (std::find(paths.begin(), paths.end(), layer) == paths.end()) {
      return NotFound("layer '" + layer + "' not found in " + model_label +
                      "; module paths are: " + Join(paths, ", "));
    }
  }
  auto forward = module.find_method("forward");
  if (!forward) return InvalidArgument(model_label + ": the module has no forward method");

  std::shared_ptr<torch::jit::Graph> graph = forward->graph()->copy();
  torch::jit::Inline(*graph);
  const PathIndex index(*graph);

  std::vector<Value*> captured;
  for (const std::string& layer : layers) {
    ND_ASSIGN_OR_RETURN(Value * value, FindLayerOutput(*graph, index, layer, model_label));
    captured.push_back(value);
  }

  // Clone values that a later in-place op would overwrite, right where they are produced.
  {
    const torch::jit::AliasDb alias_db(graph);
    std::unordered_map<Value*, Value*> cloned;
    for (Value*& value : captured) {
      auto it = cloned.find(value);
      if (it != cloned.end()) {
        value = it->second;
        continue;
      }
      if (!WrittenLater(alias_db, index, value)) continue;
      torch::jit::WithInsertPoint insert_point(value->node()->next());
      Value* copy = graph->insert(c10::aten::clone, {value});
      cloned.emplace(value, copy);
      value = copy;
    }
  }

  while (!graph->outputs().empty()) graph->eraseOutput(graph->outputs().size() - 1);
  Node* tuple = graph->appendNode(graph->createTuple(captured));
  graph->registerOutput(tuple->output());
  torch::jit::EliminateDeadCode(graph);

  c10::ClassTypePtr type = module.type();
  std::shared_ptr<torch::jit::CompilationUnit> unit = type->compilation_unit();
  const c10::QualifiedName& class_name = *type->name();
  std::string name = "nd_capture";
  for (int k = 1; type->findMethod(name) != nullptr ||
                  unit->find_function(c10::QualifiedName(class_name, name)) != nullptr;
       ++k) {
    name = "nd_capture_" + std::to_string(k);
  }
  torch::jit::Function* fn = unit->create_function(c10::QualifiedName(class_name, name), graph);
  type->addMethod(fn);
  *method_name = name;
  return Status::Ok();
}

}  // namespace

std::vector<std::string> ListModulePaths(const torch::jit::Module& module) {
  std::vector<std::string> paths;
  for (const auto& named : module.named_modules()) {
    if (!named.name.empty()) paths.push_back(named.name);
  }
  return paths;
}

StatusOr<std::string> AddCaptureMethod(torch::jit::Module& module,
                                       const std::vector<std::string>& layers,
                                       const std::string& model_label) {
  if (layers.empty()) return InvalidArgument(model_label + ": no layers to capture");
  for (const std::string& layer : layers) {
    if (layer.empty()) return InvalidArgument(model_label + ": empty layer name");
  }
  std::string method_name;
  ND_RETURN_IF_ERROR(GuardTorch(model_label + ": capturing layers", [&]() -> Status {
    return AddCaptureMethodImpl(module, layers, model_label, &method_name);
  }));
  return method_name;
}

}  // namespace nd
