using Matchlock.Core.Sandboxes;
using Matchlock.Protocol;
using Mono.Cecil;
using Mono.Cecil.Cil;

namespace Matchlock.Guest.Tests;

/// <summary>
/// docs/ARCHITECTURE.md "Processes": areas (namespaces) depend on each other in one direction
/// only. Read from the compiled assemblies with Mono.Cecil: every type a type's fields,
/// signatures, base types, attributes and method bodies name (closures and state machines count
/// for the type that declares them), grouped by namespace; any circle between namespaces fails.
/// </summary>
public sealed class ArchitectureTests
{
    public static TheoryData<string> Assemblies => new()
    {
        typeof(Sandbox).Assembly.Location,
        typeof(MuxConnection).Assembly.Location,
        typeof(Guest.Agent.GuestAgent).Assembly.Location,
    };

    [Theory]
    [MemberData(nameof(Assemblies))]
    public void No_area_depends_on_an_area_that_depends_on_it(string path)
    {
        using var module = ModuleDefinition.ReadModule(path);
        var graph = DependencyGraph(module);
        var circles = StronglyConnected(graph).Where(c => c.Count > 1).Select(c => string.Join(" <-> ", c.Order(StringComparer.Ordinal))).ToList();
        Assert.True(circles.Count == 0, $"{module.Name}: areas that depend on each other: {string.Join("; ", circles)}\n" + Explain(module, graph, circles));
    }

    [Fact]
    public void The_check_finds_a_circle_when_there_is_one()
    {
        var graph = new Dictionary<string, HashSet<string>>
        {
            ["A"] = ["B"],
            ["B"] = ["C"],
            ["C"] = ["A"],
            ["D"] = ["A"],
        };
        var circles = StronglyConnected(graph).Where(c => c.Count > 1).ToList();
        Assert.Equal(["A", "B", "C"], Assert.Single(circles).Order(StringComparer.Ordinal));
    }

    private static string Explain(ModuleDefinition module, Dictionary<string, HashSet<string>> graph, List<string> circles) =>
        circles.Count == 0 ? "" : "edges: " + string.Join(", ", graph.SelectMany(kv => kv.Value.Select(to => $"{kv.Key} -> {to}")).Where(e => circles.Any(c => e.Split(" -> ").All(c.Contains))));

    /// <summary>Namespace → the namespaces of this module its types use.</summary>
    private static Dictionary<string, HashSet<string>> DependencyGraph(ModuleDefinition module)
    {
        var graph = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var type in module.GetTypes())
        {
            var from = AreaOf(type);
            if (from.Length == 0)
            {
                continue; // <Module>, compiler-generated types outside any namespace
            }

            var uses = graph.TryGetValue(from, out var set) ? set : graph[from] = [];
            foreach (var used in Referenced(type).SelectMany(Expand))
            {
                // Within one module, the compiler names its own types by definition.
                if (used is TypeDefinition own && own.Module == module && AreaOf(own) is { Length: > 0 } to && to != from)
                {
                    uses.Add(to);
                }
            }
        }

        return graph;
    }

    /// <summary>A type and what it is made of: element types of arrays and by-refs, generic arguments.</summary>
    private static IEnumerable<TypeReference> Expand(TypeReference type)
    {
        if (type is GenericInstanceType generic)
        {
            foreach (var argument in generic.GenericArguments.SelectMany(Expand))
            {
                yield return argument;
            }
        }

        if (type is TypeSpecification { ElementType: { } element })
        {
            foreach (var inner in Expand(element))
            {
                yield return inner;
            }

            yield break;
        }

        yield return type;
    }

    private static string AreaOf(TypeReference type)
    {
        while (type.DeclaringType is { } outer)
        {
            type = outer;
        }

        return type.Namespace;
    }

    private static IEnumerable<TypeReference> Referenced(TypeDefinition type)
    {
        if (type.BaseType is { } baseType)
        {
            yield return baseType;
        }

        foreach (var i in type.Interfaces)
        {
            yield return i.InterfaceType;
        }

        foreach (var a in type.CustomAttributes)
        {
            yield return a.AttributeType;
        }

        foreach (var f in type.Fields)
        {
            yield return f.FieldType;
        }

        foreach (var p in type.Properties)
        {
            yield return p.PropertyType;
        }

        foreach (var m in type.Methods)
        {
            yield return m.ReturnType;
            foreach (var p in m.Parameters)
            {
                yield return p.ParameterType;
            }

            if (!m.HasBody)
            {
                continue;
            }

            foreach (var v in m.Body.Variables)
            {
                yield return v.VariableType;
            }

            foreach (var instruction in m.Body.Instructions)
            {
                switch (instruction.Operand)
                {
                    case TypeReference t:
                        yield return t;
                        break;
                    case MemberReference member when member.DeclaringType is { } declaring:
                        yield return declaring;
                        if (member is MethodReference method)
                        {
                            yield return method.ReturnType;
                        }
                        else if (member is FieldReference field)
                        {
                            yield return field.FieldType;
                        }

                        break;
                }
            }
        }

        foreach (var nested in type.NestedTypes)
        {
            foreach (var t in Referenced(nested))
            {
                yield return t;
            }
        }
    }

    /// <summary>Tarjan's strongly connected components.</summary>
    private static List<List<string>> StronglyConnected(Dictionary<string, HashSet<string>> graph)
    {
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        var low = new Dictionary<string, int>(StringComparer.Ordinal);
        var stack = new Stack<string>();
        var onStack = new HashSet<string>(StringComparer.Ordinal);
        var result = new List<List<string>>();
        var next = 0;

        void Visit(string v)
        {
            index[v] = low[v] = next++;
            stack.Push(v);
            onStack.Add(v);
            foreach (var w in graph.TryGetValue(v, out var edges) ? edges : [])
            {
                if (!index.ContainsKey(w))
                {
                    Visit(w);
                    low[v] = Math.Min(low[v], low[w]);
                }
                else if (onStack.Contains(w))
                {
                    low[v] = Math.Min(low[v], index[w]);
                }
            }

            if (low[v] == index[v])
            {
                var component = new List<string>();
                string w;
                do
                {
                    w = stack.Pop();
                    onStack.Remove(w);
                    component.Add(w);
                }
                while (w != v);
                result.Add(component);
            }
        }

        foreach (var v in graph.Keys.ToList())
        {
            if (!index.ContainsKey(v))
            {
                Visit(v);
            }
        }

        return result;
    }
}
