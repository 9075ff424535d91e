using System.Text.Json;

namespace Matchlock.Rpc;

/// <summary>
/// Reads a request's <c>params</c> (or a nested object of them) by field name, turning every
/// wrong or missing field into an <c>-32602</c> whose message names the field and what it
/// should be. Fields nobody asks for are ignored, as the original server does.
/// </summary>
internal readonly struct RpcParams
{
    private readonly JsonElement _element;
    private readonly string _path;

    public RpcParams(JsonElement element, string path)
    {
        _element = element;
        _path = path;
    }

    /// <summary>Params of a request that sent none: every field is absent.</summary>
    public static RpcParams Empty { get; } = new(default, "params");

    public bool Has(string name) => TryGet(name, out _);

    public string String(string name) => OptionalString(name) ?? throw Missing(name, "a string");

    public string? OptionalString(string name) =>
        !TryGet(name, out var value) ? null
        : value.ValueKind == JsonValueKind.String ? value.GetString()
        : throw Wrong(name, "a string");

    public bool Bool(string name, bool fallback) =>
        !TryGet(name, out var value) ? fallback
        : value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Wrong(name, "true or false"),
        };

    public long Integer(string name) => OptionalInteger(name) ?? throw Missing(name, "an integer");

    public long? OptionalInteger(string name)
    {
        if (!TryGet(name, out var value))
        {
            return null;
        }

        // 2.0 is accepted as 2 (some clients send floats for whole numbers); 2.5 is not.
        if (value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out var d) && d == Math.Floor(d) && Math.Abs(d) < 9e15)
        {
            return (long)d;
        }

        throw Wrong(name, "an integer");
    }

    public int? OptionalInt32(string name, int min, int max)
    {
        if (OptionalInteger(name) is not { } value)
        {
            return null;
        }

        return value >= min && value <= max ? (int)value : throw Wrong(name, $"an integer from {min} to {max}");
    }

    public double? OptionalNumber(string name) =>
        !TryGet(name, out var value) ? null
        : value.ValueKind == JsonValueKind.Number ? value.GetDouble()
        : throw Wrong(name, "a number");

    public byte[] Base64(string name)
    {
        var text = String(name);
        try
        {
            return Convert.FromBase64String(text);
        }
        catch (FormatException)
        {
            throw Wrong(name, "standard base64");
        }
    }

    public IReadOnlyList<string>? OptionalStringArray(string name)
    {
        if (!TryGet(name, out var value))
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Array)
        {
            throw Wrong(name, "an array of strings");
        }

        var list = new List<string>();
        foreach (var item in value.EnumerateArray())
        {
            list.Add(item.ValueKind == JsonValueKind.String ? item.GetString()! : throw Wrong(name, "an array of strings"));
        }

        return list;
    }

    public IReadOnlyList<KeyValuePair<string, string>>? OptionalStringMap(string name)
    {
        if (!TryGet(name, out var value))
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Object)
        {
            throw Wrong(name, "an object of string values");
        }

        var list = new List<KeyValuePair<string, string>>();
        foreach (var property in value.EnumerateObject())
        {
            list.Add(KeyValuePair.Create(property.Name, property.Value.ValueKind == JsonValueKind.String
                ? property.Value.GetString()!
                : throw new RpcException(RpcErrorCodes.InvalidParams, $"{_path}.{name}.{property.Name}: expected a string")));
        }

        return list;
    }

    public RpcParams? OptionalObject(string name)
    {
        if (!TryGet(name, out var value))
        {
            return null;
        }

        return value.ValueKind == JsonValueKind.Object ? new RpcParams(value, $"{_path}.{name}") : throw Wrong(name, "an object");
    }

    /// <summary>The members of an object field, each as params of its own (e.g. secrets by name).</summary>
    public IReadOnlyList<(string Key, RpcParams Value)> ObjectMembers(string name)
    {
        if (OptionalObject(name) is not { } obj)
        {
            return [];
        }

        var list = new List<(string, RpcParams)>();
        foreach (var property in obj._element.EnumerateObject())
        {
            list.Add((property.Name, property.Value.ValueKind == JsonValueKind.Object
                ? new RpcParams(property.Value, $"{obj._path}.{property.Name}")
                : throw new RpcException(RpcErrorCodes.InvalidParams, $"{obj._path}.{property.Name}: expected an object")));
        }

        return list;
    }

    /// <summary>The items of an array of objects.</summary>
    public IReadOnlyList<RpcParams> ObjectArray(string name)
    {
        if (!TryGet(name, out var value))
        {
            return [];
        }

        if (value.ValueKind != JsonValueKind.Array)
        {
            throw Wrong(name, "an array of objects");
        }

        var list = new List<RpcParams>();
        var i = 0;
        foreach (var item in value.EnumerateArray())
        {
            list.Add(item.ValueKind == JsonValueKind.Object
                ? new RpcParams(item, $"{_path}.{name}[{i}]")
                : throw new RpcException(RpcErrorCodes.InvalidParams, $"{_path}.{name}[{i}]: expected an object"));
            i++;
        }

        return list;
    }

    /// <summary>A command: a string (run by <c>/bin/sh -c</c>, as the original does) or an array of strings (argv).</summary>
    public IReadOnlyList<string> Command(string name)
    {
        if (!TryGet(name, out var value))
        {
            throw Missing(name, "a string or an array of strings");
        }

        if (value.ValueKind == JsonValueKind.String)
        {
            var text = value.GetString()!;
            return text.Trim().Length > 0 ? ["/bin/sh", "-c", text] : throw Wrong(name, "a non-empty command");
        }

        var argv = OptionalStringArray(name)!;
        return argv.Count > 0 && argv[0].Length > 0 ? argv : throw Wrong(name, "a non-empty command");
    }

    /// <summary>Refuses a field this server does not take (rather than ignoring what the caller meant).</summary>
    public void Forbid(string name, string why)
    {
        if (Has(name))
        {
            throw new RpcException(RpcErrorCodes.InvalidParams, $"{_path}.{name}: {why}");
        }
    }

    private bool TryGet(string name, out JsonElement value)
    {
        value = default;
        return _element.ValueKind == JsonValueKind.Object && _element.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null;
    }

    private RpcException Missing(string name, string what) => new(RpcErrorCodes.InvalidParams, $"{_path}.{name} is required: expected {what}");

    private RpcException Wrong(string name, string what) => new(RpcErrorCodes.InvalidParams, $"{_path}.{name}: expected {what}");
}
