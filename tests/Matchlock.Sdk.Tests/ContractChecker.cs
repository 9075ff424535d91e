using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Matchlock.Sdk.Tests;

/// <summary>
/// contract/rpc.json as a checker: is a request the SDK sent shaped as its method's params say
/// (required fields present, no field the contract does not list, types right: base64 decodes,
/// integers are integers)? And sample results built from the contract, to feed the SDK.
/// </summary>
internal sealed class ContractChecker
{
    private static readonly Lazy<ContractChecker> Loaded = new(() => new ContractChecker(File.ReadAllBytes(Path.Combine(RepoRoot(), "contract", "rpc.json"))));

    private readonly JsonDocument _document;

    public ContractChecker(byte[] json)
    {
        _document = JsonDocument.Parse(json);
    }

    public static ContractChecker Shared => Loaded.Value;

    public JsonElement Root => _document.RootElement;

    public IEnumerable<string> MethodNames => Root.GetProperty("methods").EnumerateObject().Select(m => m.Name);

    /// <summary>The directory holding Matchlock.slnx, walking up from the test assembly.</summary>
    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Matchlock.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"no Matchlock.slnx above {AppContext.BaseDirectory}");
    }

    /// <summary>What is wrong with one request line (nothing when it conforms).</summary>
    public List<string> CheckRequest(JsonElement request)
    {
        var errors = new List<string>();
        if (request.ValueKind != JsonValueKind.Object)
        {
            errors.Add("request: not an object");
            return errors;
        }

        if (!request.TryGetProperty("jsonrpc", out var version) || version.ValueKind != JsonValueKind.String || version.GetString() != "2.0")
        {
            errors.Add("request: jsonrpc must be \"2.0\"");
        }

        if (!request.TryGetProperty("id", out var id) || !IsInteger(id))
        {
            errors.Add("request: id must be an integer (the original clients always send one)");
        }

        foreach (var member in request.EnumerateObject())
        {
            if (member.Name is not ("jsonrpc" or "id" or "method" or "params"))
            {
                errors.Add($"request: unlisted member '{member.Name}'");
            }
        }

        if (!request.TryGetProperty("method", out var methodElement) || methodElement.ValueKind != JsonValueKind.String)
        {
            errors.Add("request: method must be a string");
            return errors;
        }

        var method = methodElement.GetString()!;
        if (!Root.GetProperty("methods").TryGetProperty(method, out var spec))
        {
            errors.Add($"request: method '{method}' is not in the contract");
            return errors;
        }

        var parameters = request.TryGetProperty("params", out var p) ? p : default;
        if (parameters.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null)
        {
            parameters = JsonDocument.Parse("{}").RootElement;
        }

        CheckValue(parameters, Shape(spec.GetProperty("params")), method + ".params", errors);
        return errors;
    }

    /// <summary>What is wrong with a result of <paramref name="method"/>.</summary>
    public List<string> CheckResult(string method, JsonElement result)
    {
        var errors = new List<string>();
        CheckValue(result, Root.GetProperty("methods").GetProperty(method).GetProperty("result"), method + ".result", errors);
        return errors;
    }

    /// <summary>What is wrong with the params of notification <paramref name="name"/>.</summary>
    public List<string> CheckNotification(string name, JsonElement parameters)
    {
        var errors = new List<string>();
        CheckValue(parameters, Root.GetProperty("notifications").GetProperty(name), name, errors);
        return errors;
    }

    /// <summary>What is wrong with <paramref name="value"/> as a <paramref name="type"/> (contract notation).</summary>
    public List<string> Check(JsonElement value, string type, string path)
    {
        var errors = new List<string>();
        CheckType(value, type, path, errors);
        return errors;
    }

    /// <summary>A result for <paramref name="method"/> with every field the contract lists, each a plausible value.</summary>
    public string SampleResult(string method) => Sample(Shape(Root.GetProperty("methods").GetProperty(method).GetProperty("result")));

    /// <summary>A notification's params with every listed field; <paramref name="id"/> for its <c>id</c>.</summary>
    public string SampleNotification(string name, long id)
    {
        var json = Sample(Root.GetProperty("notifications").GetProperty(name));
        using var document = JsonDocument.Parse(json);
        var fields = document.RootElement.EnumerateObject().Select(f => f.Name == "id" ? $"\"id\":{id}" : f.Name == "timestamp" ? "\"timestamp\":1714558830000" : $"\"{f.Name}\":{f.Value.GetRawText()}");
        return "{" + string.Join(",", fields) + "}";
    }

    private JsonElement Shape(JsonElement reference) =>
        reference.ValueKind == JsonValueKind.String
            ? Root.GetProperty("types").GetProperty(reference.GetString()!.TrimStart('#'))
            : reference;

    private void CheckValue(JsonElement value, JsonElement shape, string path, List<string> errors)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            errors.Add($"{path}: expected an object, got {value.ValueKind}");
            return;
        }

        var fields = shape.GetProperty("fields");
        foreach (var field in fields.EnumerateObject())
        {
            var required = field.Value.TryGetProperty("required", out var r) && r.GetBoolean();
            if (required && !value.TryGetProperty(field.Name, out _))
            {
                errors.Add($"{path}.{field.Name}: required but missing");
            }
        }

        var forbidden = shape.TryGetProperty("forbidden", out var f) ? f.EnumerateArray().Select(e => e.GetString()).ToHashSet() : [];
        foreach (var member in value.EnumerateObject())
        {
            if (forbidden.Contains(member.Name))
            {
                errors.Add($"{path}.{member.Name}: forbidden");
            }
            else if (!fields.TryGetProperty(member.Name, out var fieldSpec))
            {
                errors.Add($"{path}.{member.Name}: not in the contract");
            }
            else
            {
                CheckType(member.Value, fieldSpec.GetProperty("type").GetString()!, $"{path}.{member.Name}", errors);
                if (fieldSpec.TryGetProperty("enum", out var allowed) && !allowed.EnumerateArray().Any(a => a.GetString() == member.Value.GetString()))
                {
                    errors.Add($"{path}.{member.Name}: '{member.Value}' is not one of {allowed.GetRawText()}");
                }
            }
        }
    }

    private void CheckType(JsonElement value, string type, string path, List<string> errors)
    {
        if (type.Contains('|', StringComparison.Ordinal) && !type.StartsWith("array<", StringComparison.Ordinal) && !type.StartsWith("map<", StringComparison.Ordinal))
        {
            var attempts = type.Split('|').Select(t => Check(value, t, path)).ToList();
            if (attempts.All(a => a.Count > 0))
            {
                errors.Add($"{path}: matches none of {type}: {string.Join("; ", attempts.SelectMany(a => a))}");
            }

            return;
        }

        if (type.StartsWith("array<", StringComparison.Ordinal))
        {
            if (value.ValueKind != JsonValueKind.Array)
            {
                errors.Add($"{path}: expected {type}, got {value.ValueKind}");
                return;
            }

            var item = type[6..^1];
            var i = 0;
            foreach (var element in value.EnumerateArray())
            {
                CheckType(element, item, $"{path}[{i++}]", errors);
            }

            return;
        }

        if (type.StartsWith("map<", StringComparison.Ordinal))
        {
            if (value.ValueKind != JsonValueKind.Object)
            {
                errors.Add($"{path}: expected {type}, got {value.ValueKind}");
                return;
            }

            var item = type[4..^1];
            foreach (var member in value.EnumerateObject())
            {
                CheckType(member.Value, item, $"{path}.{member.Name}", errors);
            }

            return;
        }

        if (type.StartsWith('#'))
        {
            CheckValue(value, Root.GetProperty("types").GetProperty(type[1..]), path, errors);
            return;
        }

        var ok = type switch
        {
            "string" => value.ValueKind == JsonValueKind.String,
            "integer" => IsInteger(value),
            "number" => value.ValueKind == JsonValueKind.Number,
            "boolean" => value.ValueKind is JsonValueKind.True or JsonValueKind.False,
            "object" => value.ValueKind == JsonValueKind.Object,
            "base64" => value.ValueKind == JsonValueKind.String && IsBase64(value.GetString()!),
            _ => throw new InvalidOperationException($"unknown contract type '{type}' at {path}"),
        };
        if (!ok)
        {
            errors.Add($"{path}: expected {type}, got {value.GetRawText()}");
        }
    }

    private static bool IsInteger(JsonElement value) =>
        value.ValueKind == JsonValueKind.Number && !value.GetRawText().Contains('.', StringComparison.Ordinal) && !value.GetRawText().Contains('e', StringComparison.OrdinalIgnoreCase);

    private static bool IsBase64(string text)
    {
        var buffer = new byte[text.Length];
        return Convert.TryFromBase64String(text, buffer, out _);
    }

    private string Sample(JsonElement shape)
    {
        var fields = shape.GetProperty("fields").EnumerateObject().Select(f => $"\"{f.Name}\":{SampleOf(f.Value.GetProperty("type").GetString()!, f.Value)}");
        return "{" + string.Join(",", fields) + "}";
    }

    private string SampleOf(string type, JsonElement spec)
    {
        if (spec.ValueKind == JsonValueKind.Object && spec.TryGetProperty("enum", out var values))
        {
            return values[0].GetRawText();
        }

        if (type.StartsWith("array<", StringComparison.Ordinal))
        {
            return "[" + SampleOf(type[6..^1], default) + "]";
        }

        if (type.StartsWith("map<", StringComparison.Ordinal))
        {
            return "{\"k\":" + SampleOf(type[4..^1], default) + "}";
        }

        if (type.StartsWith('#'))
        {
            return Sample(Root.GetProperty("types").GetProperty(type[1..]));
        }

        return type.Split('|')[0] switch
        {
            "string" when spec.ValueKind == JsonValueKind.Object && spec.TryGetProperty("doc", out var doc) && doc.GetString()!.Contains("RFC 3339", StringComparison.Ordinal) => "\"2024-05-01T10:20:30.123456789Z\"",
            "string" => "\"sample\"",
            "integer" => "7",
            "number" => "1.5",
            "boolean" => "true",
            "object" => "{}",
            "base64" => "\"" + Convert.ToBase64String(Encoding.UTF8.GetBytes("sample")) + "\"",
            var other => throw new InvalidOperationException($"unknown contract type '{other}'"),
        };
    }
}
